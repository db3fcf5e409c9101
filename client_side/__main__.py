from client_side.cli import run

run()
