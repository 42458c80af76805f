"""Failover tests: the report's nine patterns on a real Pacemaker lab (esrt.testing)."""
