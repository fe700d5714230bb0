from installer.entry import main

main()
