"""Parties (责任主体): carriers, merchants, warehouses and internal departments."""
