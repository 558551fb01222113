from humanssl.cli import main

raise SystemExit(main())
