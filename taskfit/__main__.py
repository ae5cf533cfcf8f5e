from taskfit.cli.app import main

main()
