"""Evaluation: landmark errors (NME, failure rate, AUC), segmentation F1, depth errors, reports;
Stage II's two methods (``methods``: direct mapping, finetuned nets) and ``sfray evaluate`` (``job``)."""
