"""Pricing, invoice numbering, PDF, e-invoice XML and accounting exports.

Empty until the tariff and invoice issues land; see docs/ARCHITECTURE.md.
"""
