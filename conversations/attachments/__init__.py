"""Files people attach to messages: validated, stored privately, served to their owner."""
