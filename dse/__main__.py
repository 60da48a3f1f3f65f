"""``python -m dse``: the same as the ``dse`` command (see :mod:`dse.cli`)."""
from dse.cli.main import main

if __name__ == "__main__":
    main()
