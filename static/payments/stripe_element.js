/* Stripe's Payment Element (only with real Stripe keys). The card goes from
   the browser to Stripe, never to this site. The form says what it confirms:
   - data-confirm="payment" (checkout): the PaymentIntent; Stripe's webhook
     books the task.
   - data-confirm="setup" (saved card): a SetupIntent (usage off_session);
     Stripe sends the browser back to the card page (?setup_intent=...),
     where the card is saved; the webhook saves it too if the browser never
     comes back. */
(function () {
  var form = document.getElementById("stripe-form");
  if (!form || typeof Stripe === "undefined") { return; }
  var stripe = Stripe(form.dataset.publishableKey);
  var elements = stripe.elements({clientSecret: form.dataset.clientSecret});
  elements.create("payment").mount("#payment-element");
  var confirm = form.dataset.confirm === "setup" ? stripe.confirmSetup : stripe.confirmPayment;
  var button = document.getElementById("stripe-submit");
  var error = document.getElementById("stripe-error");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    button.disabled = true;
    error.textContent = "";
    confirm.call(stripe, {elements: elements, confirmParams: {return_url: form.dataset.returnUrl}}).then(function (result) {
      if (result.error) {
        error.textContent = result.error.message;
        button.disabled = false;
      }
    });
  });
})();
