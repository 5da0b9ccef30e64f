/* Stripe's Payment Element on the saved-card page (only with real Stripe keys).
   It confirms a SetupIntent (usage off_session): the card goes from the
   browser to Stripe, which sends the browser back to the card page
   (?setup_intent=...), where the card is saved; Stripe's webhook saves it too
   if the browser never comes back. */
(function () {
  var form = document.getElementById("stripe-setup-form");
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
    stripe.confirmSetup({elements: elements, confirmParams: {return_url: form.dataset.returnUrl}}).then(function (result) {
      if (result.error) {
        error.textContent = result.error.message;
        button.disabled = false;
      }
    });
  });
})();
