from ganbench.cli import main

raise SystemExit(main())
