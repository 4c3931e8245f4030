"""Semantic checks: from parsed modules to a checked, resolved program, collecting diagnostics.

The phases are modules: `loader` (files and imports), `types` (the type system and units),
`evaluate` (expressions to typed values), `resolve` (blocks to the program model),
`templates` (Jinja2 references), `graph` (cycles, unused and unreachable), `resources`
(accelerators and feasibility) and `targets` (backend capabilities).
"""
