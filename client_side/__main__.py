from client_side.cli import command_line

command_line()
