from ftbench.recipes.demo.arithmetic import main

raise SystemExit(main())
