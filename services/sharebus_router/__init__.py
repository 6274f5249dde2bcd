"""The router: a Faust app that applies the sharing rules to every record of every source topic."""
