"""`python -m esrt.region NAME [--home DIR] [--definition FILE.json]`."""

from esrt.region.main import main

if __name__ == "__main__":
    main()
