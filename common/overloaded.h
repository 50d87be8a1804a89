// Overloaded: builds one visitor out of several lambdas for std::visit over
// the cores' event and message variants.
#pragma once

namespace gv {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

}  // namespace gv
