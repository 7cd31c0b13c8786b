"""The simulated field both drivers use: simulated devices, the WAN model, sites as device
hosts, fleet generation and fleet files, fleet-directory reading and head-end plugin loading.
Must never import a driver (actors, meters_sim) or read a clock.
"""
