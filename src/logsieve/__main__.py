from logsieve.cli.app import main

main()
