"""The **realistic** synthetic world (``gee-alt demo --world realistic``, the default).

Its truth is written here, independently of the engine's science (:mod:`gee_alt.science` is never
imported on the truth path; a test checks it), and it is at least as hard as real data where it
matters: daily skin temperature with a diurnal cycle seen only at the Terra/Aqua overpasses (Terra
alone until mid-2002, Terra's 2001 outage), clouds that favour cold days and high ground, snow and
the zero curtain between the surface reaching 0 °C and the ground thawing, soil wetting after rain,
a ground (moisture, peat, conductivity) that no input raster carries, a misclassified land-cover
map, a two-layer Stefan thaw (not E·√DDT), permafrost only where the ground is cold enough, a mine
that opens in 2003 and is partly restored, and boreholes and probes placed and read as a field team
would. Modules: :mod:`.terrain`, :mod:`.climate`, :mod:`.land`, :mod:`.ground`, :mod:`.sensors`,
:mod:`.sites`, :mod:`.scene`.
"""
