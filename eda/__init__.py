"""Physical-design flow and graph-based pre-routing slack prediction (E2ESlack) on the osu018 library.

parse/: DEF, Liberty, SDF, LEF, gate-netlist and qrouter RC-tree readers (TimingParser); spef: RC trees and star-RC
estimates as SPEF; designs: small Verilog designs to train on; flow: yosys → graywolf → qrouter →
OpenSTA with per-pin labels; graph: the timing graph as torch-geometric data; slack: the predictor.
"""
