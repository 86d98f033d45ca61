from tcc.cli import entry

entry()
