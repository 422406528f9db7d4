"""Git: hardened git calls, job workspaces, and safe writes into the user's checkout."""
