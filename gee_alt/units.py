"""Unit conversions shared by every module (pure constants, importable from anywhere).

Temperatures are carried in °C; kelvin appear only where a sensor delivers them (MODIS LST,
Landsat ST) and in radiance-like aggregation, which averages (T + KELVIN_AT_0_DEGC)^4.
"""

KELVIN_AT_0_DEGC = 273.15  # K; T(K) = T(°C) + KELVIN_AT_0_DEGC
