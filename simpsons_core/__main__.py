"""`python -m simpsons_core ...`: see `simpsons_core.cli`."""

from simpsons_core.cli import main

raise SystemExit(main())
