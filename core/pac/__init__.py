"""PAC adapters behind one port (:class:`core.pac.base.Pac`): the built-in sandbox, Finkok, SW Sapien."""
