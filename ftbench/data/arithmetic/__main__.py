from ftbench.data.arithmetic import main

raise SystemExit(main())
