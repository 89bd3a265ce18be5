import sys

from sfray.cli import main

sys.exit(main())
