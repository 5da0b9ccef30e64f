/* Stripe's Payment Element on the checkout page (only with real Stripe keys).
   The card goes from the browser to Stripe; Stripe's webhook books the task. */
(function () {
  var form = document.getElementById("stripe-form");
  if (!form || typeof Stripe === "undefined") { return; }
  var stripe = Stripe(form.dataset.publishableKey);
  var elements = stripe.elements({clientSecret: form.dataset.clientSecret});
  elements.create("payment").mount("#payment-element");
  var button = document.getElementById("stripe-submit");
  var error = document.getElementById("stripe-error");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    button.disabled = true;
    error.textContent = "";
    stripe.confirmPayment({elements: elements, confirmParams: {return_url: form.dataset.returnUrl}}).then(function (result) {
      if (result.error) {
        error.textContent = result.error.message;
        button.disabled = false;
      }
    });
  });
})();
