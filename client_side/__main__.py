from client_side.cli import main

main()
