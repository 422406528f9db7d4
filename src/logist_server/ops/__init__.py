"""Operations: checks of the machine and the repository (`logist doctor`)."""
