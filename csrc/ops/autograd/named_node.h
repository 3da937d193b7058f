#pragma once
// Our autograd nodes under the names PyTorch's own ops give theirs. A C++
// autograd::Function's node (CppNode<F>) is named after its C++ type, so tensors printed
// `grad_fn=<Elu>>` (Python keeps what follows the last "::" of
// "torch::autograd::CppNode<torch_ext::autograd::Elu>"), and SELU and CELU showed as Elu.
// torch::autograd::Function<F>::apply makes its node itself, so apply_named is that apply
// with a NamedNode<F> in its place: the same node in every other respect (backward,
// saved tensors, compiled autograd's keys, which use F's type), except its name() and an
// empty dirty set once the outputs are wrapped (see below).

#include <torch/csrc/autograd/custom_function.h>
#include <torch/version.h>

#include <string>
#include <utility>

namespace torch_ext::autograd {

// Native's node names, by the op and form a Function records ("EluBackward0" for
// torch.nn.functional.elu, "EluBackward1" for elu_, ...).
template <class F>
struct NamedNode final : torch::autograd::CppNode<F> {
  explicit NamedNode(const char* name) : name_(name) {}
  std::string name() const override { return name_; }

 private:
  const char* name_;  // a string literal
};

// Declares that F, an in-place Function whose forward saves only its (dirty) output, saves
// it as ATen's in-place kernels save their result: SavedVariable(result, is_output = true,
// is_inplace_on_view = result.is_view()). The context's own save_variables decides
// is_output by comparing the tensor's grad_fn with the node, which for a view (its grad_fn
// the view node over CopySlices) is false: the saved view then held that node, which holds
// this one, a cycle nothing freed when a graph was dropped without a backward. As a member
// of CppNode<F>, a friend of AutogradContext, this specialization reaches its saved lists.
// At namespace scope, after F's definition and before its first apply_named.
#define TORCH_EXT_SAVES_OUTPUT_AS_ATEN(F)                                         \
  namespace torch::autograd {                                                     \
  template <>                                                                     \
  inline void CppNode<F>::save_variables_to_ctx() {                               \
    ctx_.saved_variables_.clear();                                                \
    for (const auto& var : ctx_.to_save_) {                                       \
      ctx_.saved_variables_.emplace_back(var, /*is_output=*/true, var.is_view()); \
    }                                                                             \
    ctx_.to_save_.clear();                                                        \
  }                                                                               \
  }

// torch 2.14 moved the node-creation hooks out of _wrap_outputs, into its caller.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 14)
#define TORCH_EXT_CALLER_FIRES_NODE_HOOKS 1
#else
#define TORCH_EXT_CALLER_FIRES_NODE_HOOKS 0
#endif

// F::apply(args...) recording a node named `name`: torch::autograd::Function<F>::apply of
// the torch release built against, step for step.
template <class F, class... Args>
auto apply_named(const char* name, Args&&... args) {
  using namespace torch::autograd;
  using forward_return_t = forward_t<F, Args...>;
  if (const auto& functorch_tls = at::functorch::functorchTLSAccessor()) {
    functorch_tls->checkSupportsCppAutogradFunction();  // as apply: torch.func goes via Python
  }
  auto node = c10::make_intrusive<NamedNode<F>>(name);
  variable_list input_vars;
  input_vars.reserve(sizeof...(Args));
  node->is_variable_input_.reserve(sizeof...(Args));
  extract_vars(node->is_variable_input_, input_vars, args...);

  const bool is_executable = GradMode::is_enabled() && any_variable_requires_grad(input_vars);
  node->set_ctx_grad_fn(node);
  node->set_next_edges(is_executable ? collect_next_edges(input_vars) : edge_list());
  node->clear_input_metadata();
  node->input_info_.reserve(input_vars.size());
  for (auto& var : input_vars) node->input_info_.emplace_back(var);

  forward_return_t outputs;
  {
    AutoGradMode grad_mode(false);
    outputs = F::forward(&node->ctx_, std::forward<Args>(args)...);
  }
  const _jvp_fn_t jvp_fn = [](const variable_list&, const variable_list&) -> variable_list {
    TORCH_CHECK(false,
                "torch_ext: forward AD reaches a custom Function (a bug: the Autograd "
                "kernels set their outputs' tangents themselves)");
  };
  const auto view_as_self_fn = [](const at::Tensor& x) -> at::Tensor { return x.view_as(x); };
#if TORCH_EXT_CALLER_FIRES_NODE_HOOKS
  c10::intrusive_ptr<Node> attached_node;
#endif
  auto wrapped_outputs = _wrap_outputs(
      input_vars, node->ctx_.get_non_differentiable(), node->ctx_.get_and_bump_dirty(),
      to_optional(outputs), is_executable ? node : nullptr, jvp_fn, {}, view_as_self_fn, false
#if TORCH_EXT_CALLER_FIRES_NODE_HOOKS
      ,
      attached_node
#endif
  );
  // The dirty set has done its work (the outputs' history is rebased); compiled autograd
  // refuses a node that still holds one (CppNode::compiled_args asserts it empty), which
  // made an eager in-place forward's backward uncompilable. mark_dirty replaces the set.
  node->ctx_.mark_dirty({});

  if (is_executable) {
    node->output_info_.reserve(wrapped_outputs.size());
    for (auto& output : wrapped_outputs) {
      if (output.has_value()) {
        node->output_info_.emplace_back(output.value());
      } else {
        node->output_info_.emplace_back();
      }
    }
    node->save_variables_to_ctx();
#if TORCH_EXT_CALLER_FIRES_NODE_HOOKS
    if (attached_node) fire_node_creation_hooks(attached_node);  // once the node is complete
#endif
  }
  return to_output_type<forward_return_t>(wrapped_outputs);
}

}  // namespace torch_ext::autograd
