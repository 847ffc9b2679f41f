"""Channel adapters behind one interface (:class:`lifeloop.execution.channels.base.Channel`)."""
