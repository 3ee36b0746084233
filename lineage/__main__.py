from lineage.cli import main

raise SystemExit(main())
