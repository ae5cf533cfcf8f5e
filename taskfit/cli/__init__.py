"""The command line: typer parses, the library works, `render` turns results into text."""
