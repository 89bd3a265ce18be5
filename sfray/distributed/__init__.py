"""The only library package that imports ray: thin glue from sfray components to Ray Data/Train/Tune."""
