"""geogrid: grid management for grid-based social governance (网格化服务管理)."""

__version__ = "0.1.0"
