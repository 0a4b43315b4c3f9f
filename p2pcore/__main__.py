from p2pcore.cli import main

main()
