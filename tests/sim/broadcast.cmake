# The broadcast scenarios with their bounds asserted (included by tests/sim/CMakeLists.txt).
gv_add_test(sim_broadcast_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/broadcast_scenarios_test.cc LIBS gv_sim TIMEOUT 300)

# Not a test: prints the Plumtree variant comparison of docs/simulation.md.
#   broadcast_variants NODES SEED single-sender|multi-sender|loss BROADCASTS [LOSS]
add_executable(broadcast_variants ${CMAKE_CURRENT_LIST_DIR}/broadcast_variants_main.cc)
target_link_libraries(broadcast_variants PRIVATE gv_sim gv_options)
