"""dse against published measurements of serving energy: the table, the ratios and a parity figure.

    python -m analysis.validation [--out DIR]       (the same as ``dse validate``; dse.analyze.validation)
"""
import sys

from dse.analyze.validation import main

if __name__ == "__main__":
    sys.exit(main())
