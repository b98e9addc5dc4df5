from quartet.cli import main

raise SystemExit(main())
