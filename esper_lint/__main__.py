from esper_lint.frontends.cli import entry

entry()
