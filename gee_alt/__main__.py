from gee_alt.cli import main

main()
