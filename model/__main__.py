from il2als.cli.app import console

console()
