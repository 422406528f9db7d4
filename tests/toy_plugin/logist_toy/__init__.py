"""logist-toy-plugin: a toy agent (`toy`) and a toy runtime (`toy`) for Logist."""
