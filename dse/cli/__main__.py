"""``python -m dse.cli``: the same as the ``dse`` command (and ``python -m dse``)."""
from dse.cli.main import main

if __name__ == "__main__":
    main()
