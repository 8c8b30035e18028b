"""Operations: systemd notification, function checks, metrics."""
