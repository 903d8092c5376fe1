#include "api/model_select.h"

namespace sluice {

std::variant<model_choice, api_error> choose_model(const app_context& app,
                                                   const std::optional<std::string>& preferred_model,
                                                   const std::optional<std::string>& model_type) {
    const auto& models = app.cfg.models;
    if (preferred_model) {
        for (std::size_t i = 0; i < models.size(); ++i) {
            if (models[i].name == *preferred_model)
                return model_choice{.index = i, .reason = "preferred_model"};
        }
        return api_error{.code = 404, .message = "preferred_model is not a configured model"};
    }
    const std::string type = model_type.value_or(app.cfg.routing.default_model_type);
    if (auto role = parse_model_role(type)) {
        for (std::size_t i = 0; i < models.size(); ++i) {
            if (models[i].role == *role) return model_choice{.index = i, .reason = "explicit"};
        }
        return api_error{.code = 503, .message = "no model available for model_type " + type};
    }
    if (models.empty()) return api_error{.code = 503, .message = "no model available"};
    return model_choice{.index = 0, .reason = "default"};
}

}  // namespace sluice
