import Client

await ApplyCommand.main()
