from camlytics.cli import main

raise SystemExit(main())
