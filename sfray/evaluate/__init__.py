"""Evaluation: landmark errors (NME, failure rate, AUC), segmentation F1, depth errors, reports."""
