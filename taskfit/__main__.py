from taskfit.cli import main

main()
