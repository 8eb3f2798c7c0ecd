"""`python -m simpsons_core ...`: see `simpsons_core.cli.main`."""

from simpsons_core.cli.main import main

raise SystemExit(main())
