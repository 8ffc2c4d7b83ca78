"""Template mining: masking of variable fields, the Drain parser, accuracy metrics and
per-system presets.

Submodules are imported on demand (``from logsieve.parsing.drain import Drain``); this
package module stays empty so that importing it costs nothing.
"""
